//! The equivalent flags, the contexts, and the agreement check shared by the benchmark
//! (`benches/side_by_side.rs`) and the test (`tests/agree.rs`).
//!
//! Three pairs of flags, each written once in flagd's format for `mobius-flags` and once as an
//! Unleash client-features document for `unleash-yggdrasil`:
//!
//! 1. **static**: flagd — a boolean flag with no targeting (`on` by default); Unleash — a toggle
//!    with the `default` strategy and one strategy variant `on`, so both name a variant.
//! 2. **targeting**: flagd — `if` + `and` of `ends_with(email, "@example.com")`,
//!    `in(country, ["NL", "DE", "FR"])`, `sem_ver(appVersion, ">=", "2.0.0")` → `on`, else
//!    `off`; Unleash — the `default` strategy with the constraints `STR_ENDS_WITH`, `IN` and
//!    `SEMVER_GTE` and the strategy variant `on` (no match: the toggle is off and the variant
//!    is `disabled`).
//! 3. **split**: flagd — `fractional` 33/33/34 over `a`, `b`, `c`, bucketed by
//!    `$flagd.flagKey + targetingKey`; Unleash — `flexibleRollout` at 100 % sticky on `userId`
//!    with strategy variants `a`, `b`, `c` weighted 330/330/340 (of 1000).
//!
//! Each set holds 25 copies of each pair (75 flags), so lookups are not in a one-entry map.

use std::collections::HashMap;

use mobius_flags::{Context, FlagSet, LoadOptions};
use unleash_yggdrasil::state::EnrichedContext;
use unleash_yggdrasil::{ClientFeatures, EngineState, UpdateMessage};

/// Copies of each pair in each set.
pub const COPIES: usize = 25;
/// The `in` list / `IN` values of the targeting rule.
pub const COUNTRIES: [&str; 3] = ["NL", "DE", "FR"];
/// The split's variants and weights (flagd's; Unleash's are ten times these, out of 1000).
pub const SPLIT: [(&str, u32); 3] = [("a", 33), ("b", 33), ("c", 34)];

/// The flagd document for `mobius-flags`.
pub fn flagd_document() -> String {
    let countries = COUNTRIES.map(|c| format!("\"{c}\"")).join(", ");
    let split = SPLIT.map(|(v, w)| format!("[\"{v}\", {w}]")).join(", ");
    let mut flags = Vec::new();
    for i in 0..COPIES {
        flags.push(format!(
            r#""static-{i}": {{"state": "ENABLED", "variants": {{"on": true, "off": false}}, "defaultVariant": "on"}}"#
        ));
        flags.push(format!(
            r#""targeting-{i}": {{"state": "ENABLED", "variants": {{"on": true, "off": false}}, "defaultVariant": "off",
              "targeting": {{"if": [{{"and": [
                {{"ends_with": [{{"var": "email"}}, "@example.com"]}},
                {{"in": [{{"var": "country"}}, [{countries}]]}},
                {{"sem_ver": [{{"var": "appVersion"}}, ">=", "2.0.0"]}}]}}, "on", "off"]}}}}"#
        ));
        flags.push(format!(
            r#""split-{i}": {{"state": "ENABLED", "variants": {{"a": "A", "b": "B", "c": "C"}}, "defaultVariant": "a",
              "targeting": {{"fractional": [{split}]}}}}"#
        ));
    }
    format!(r#"{{"metadata": {{"flagSetId": "bench"}}, "flags": {{{}}}}}"#, flags.join(",\n"))
}

/// The Unleash client-features document (what `/api/client/features` serves) for yggdrasil.
pub fn unleash_document() -> String {
    let countries = COUNTRIES.map(|c| format!("\"{c}\"")).join(", ");
    let mut features = Vec::new();
    for i in 0..COPIES {
        features.push(format!(
            r#"{{"name": "static-{i}", "enabled": true, "strategies": [{{"name": "default", "parameters": {{}},
                "constraints": [], "variants": [{{"name": "on", "weight": 1000, "stickiness": "default"}}]}}]}}"#
        ));
        features.push(format!(
            r#"{{"name": "targeting-{i}", "enabled": true, "strategies": [{{"name": "default", "parameters": {{}},
                "constraints": [
                  {{"contextName": "email", "operator": "STR_ENDS_WITH", "values": ["@example.com"], "caseInsensitive": false, "inverted": false}},
                  {{"contextName": "country", "operator": "IN", "values": [{countries}], "caseInsensitive": false, "inverted": false}},
                  {{"contextName": "appVersion", "operator": "SEMVER_GTE", "value": "2.0.0", "caseInsensitive": false, "inverted": false}}],
                "variants": [{{"name": "on", "weight": 1000, "stickiness": "default"}}]}}]}}"#
        ));
        let variants = SPLIT
            .map(|(v, w)| format!(r#"{{"name": "{v}", "weight": {}, "stickiness": "userId"}}"#, w * 10))
            .join(", ");
        features.push(format!(
            r#"{{"name": "split-{i}", "enabled": true, "strategies": [{{"name": "flexibleRollout",
                "parameters": {{"rollout": "100", "stickiness": "userId", "groupId": "split-{i}"}},
                "constraints": [], "variants": [{variants}]}}]}}"#
        ));
    }
    format!(r#"{{"version": 2, "features": [{}]}}"#, features.join(",\n"))
}

/// The loaded flagd set.
pub fn mobius_set() -> FlagSet {
    FlagSet::from_json("bench.flagd.json", &flagd_document(), &LoadOptions::default())
        .expect("the flagd document loads")
}

/// A yggdrasil engine holding the Unleash document.
pub fn yggdrasil_engine() -> EngineState {
    let features: ClientFeatures = serde_json::from_str(&unleash_document()).expect("the Unleash document parses");
    let engine = EngineState::default();
    let warnings = engine.take_state(UpdateMessage::FullResponse(features));
    assert!(warnings.is_none(), "yggdrasil could not compile a toggle: {warnings:?}");
    engine
}

/// One subject, before it is put in either engine's context type.
#[derive(Debug, Clone)]
pub struct Subject {
    /// flagd's `targetingKey`, Unleash's `userId`.
    pub key: String,
    pub email: Option<String>,
    pub country: Option<String>,
    pub app_version: Option<String>,
}

impl Subject {
    /// flagd's context: `targetingKey` and the three attributes.
    pub fn mobius(&self) -> Context {
        let mut context = Context::with_targeting_key(self.key.clone());
        for (name, value) in self.attributes() {
            context = context.set(name, value);
        }
        context
    }

    /// Unleash's context: `userId` and the three attributes as `properties`.
    pub fn unleash(&self) -> unleash_types::client_features::Context {
        let properties: HashMap<String, String> =
            self.attributes().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        unleash_types::client_features::Context {
            user_id: Some(self.key.clone()),
            properties: Some(properties),
            ..Default::default()
        }
    }

    fn attributes(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [("email", &self.email), ("country", &self.country), ("appVersion", &self.app_version)]
            .into_iter()
            .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
    }
}

/// splitmix64: a fixed seed gives the same subjects on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }

    /// `matching` with probability 4/5, else one of `other`.
    fn mostly<'a>(&mut self, matching: &[&'a str], other: &[&'a str]) -> &'a str {
        if self.next() % 5 < 4 { self.pick(matching) } else { self.pick(other) }
    }
}

const MATCHING_DOMAINS: [&str; 1] = ["@example.com"];
/// Near misses: another domain, another case (both sides compare case-sensitively), a suffix.
const OTHER_DOMAINS: [&str; 3] = ["@example.org", "@EXAMPLE.COM", "@example.com.evil"];
const OTHER_COUNTRIES: [&str; 4] = ["US", "GB", "BE", "nl"];
const MATCHING_VERSIONS: [&str; 6] = ["2.0.0", "2.0.1", "2.10.0", "3.1.4", "10.0.0", "2.0.0+build.7"];
const OTHER_VERSIONS: [&str; 4] = ["1.9.9", "1.10.0", "2.0.0-rc.1", "0.9.0"];

/// `n` subjects. With `all_match`, every one satisfies all three conditions of the targeting
/// rule (the costly path: nothing short-circuits); otherwise each condition holds with
/// probability 4/5, so about half match.
pub fn subjects(n: usize, seed: u64, all_match: bool) -> Vec<Subject> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|_| {
            let key = format!("user-{:x}", rng.next() >> 24);
            let (email, country, version) = if all_match {
                (rng.pick(&MATCHING_DOMAINS), rng.pick(&COUNTRIES), rng.pick(&MATCHING_VERSIONS))
            } else {
                (
                    rng.mostly(&MATCHING_DOMAINS, &OTHER_DOMAINS),
                    rng.mostly(&COUNTRIES, &OTHER_COUNTRIES),
                    rng.mostly(&MATCHING_VERSIONS, &OTHER_VERSIONS),
                )
            };
            Subject {
                email: Some(format!("{}{email}", &key[5..])),
                key,
                country: Some(country.to_owned()),
                app_version: Some(version.to_owned()),
            }
        })
        .collect()
}

/// Both engines' answer for a boolean pair, in the same terms: the variant named (flagd's `on`
/// or `off`; Unleash's `on`, or `disabled` when the toggle is off) and the boolean (flagd's
/// value; Unleash's `is_enabled`). Panics when either engine's two entry points disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BooleanAnswer {
    pub on: bool,
}

/// Mobius's answer to a boolean pair.
pub fn mobius_boolean(set: &FlagSet, key: &str, context: &Context) -> BooleanAnswer {
    let evaluation = set.evaluate(key, context);
    let typed = set.boolean(key, context, false);
    let on = match (evaluation.variant, evaluation.value.and_then(|v| v.as_bool())) {
        (Some("on"), Some(true)) => true,
        (Some("off"), Some(false)) => false,
        other => panic!("mobius answered {other:?} for {key}"),
    };
    assert_eq!(typed.value, on, "mobius: evaluate and boolean disagree on {key}");
    BooleanAnswer { on }
}

/// Yggdrasil's answer to a boolean pair.
pub fn yggdrasil_boolean(
    engine: &EngineState,
    key: &str,
    context: &unleash_types::client_features::Context,
) -> BooleanAnswer {
    let variant = engine.get_variant(key, context, &None);
    let on = match (variant.name.as_str(), variant.enabled, variant.feature_enabled) {
        ("on", true, true) => true,
        ("disabled", false, false) => false,
        other => panic!("yggdrasil answered {other:?} for {key}"),
    };
    let enriched = EnrichedContext::from(context, key, None);
    let checked = engine.check_variant(&enriched).expect("the toggle exists");
    assert_eq!((checked.name == "on", checked.enabled), (on, on), "yggdrasil: get_variant and check_variant disagree");
    assert_eq!(engine.is_enabled(key, context, &None), on, "yggdrasil: get_variant and is_enabled disagree on {key}");
    assert_eq!(engine.check_enabled(&enriched), Some(on), "yggdrasil: is_enabled and check_enabled disagree");
    BooleanAnswer { on }
}

/// Mobius's variant for the split.
pub fn mobius_split<'a>(set: &'a FlagSet, key: &'a str, context: &Context) -> &'a str {
    set.evaluate(key, context).variant.unwrap_or_else(|| panic!("mobius chose no variant for {key}"))
}

/// Yggdrasil's variant for the split.
pub fn yggdrasil_split(engine: &EngineState, key: &str, context: &unleash_types::client_features::Context) -> String {
    let variant = engine.get_variant(key, context, &None);
    assert!(variant.enabled && variant.feature_enabled, "yggdrasil: split {key} is off: {variant:?}");
    let checked = engine.check_variant(&EnrichedContext::from(context, key, None)).expect("the toggle exists");
    assert_eq!(checked.name, variant.name, "yggdrasil: get_variant and check_variant disagree");
    variant.name
}

/// What the agreement check found.
#[derive(Debug)]
pub struct Agreement {
    pub contexts: usize,
    /// Static-flag answers on, per engine (all of them, on both sides).
    pub static_on: [usize; 2],
    /// Targeting answers on, per engine (equal: every answer is compared).
    pub targeting_on: [usize; 2],
    /// The split's shares in percent, per engine, in `SPLIT`'s order.
    pub split_shares: [[f64; 3]; 2],
    /// Subjects the two splits put in the same variant (chance alone gives ≈ 33 %).
    pub split_same_variant: usize,
}

/// Evaluates pairs 1–3 on `n` subjects with both engines: pairs 1 and 2 must agree exactly on
/// every subject, and pair 3's shares must each be within 2 points of the weights on each side.
/// The split's assignments are not compared one by one: flagd hashes `flagKey + targetingKey`
/// (murmur3, seed 0, bucket = hash × Σweights >> 32) while Unleash hashes `groupId:userId`
/// (murmur3, seed 86028157, hash mod Σweights + 1), so the same subject lands in unrelated
/// buckets by design.
pub fn check_agreement(set: &FlagSet, engine: &EngineState, n: usize) -> Agreement {
    let mut agreement = Agreement {
        contexts: n,
        static_on: [0; 2],
        targeting_on: [0; 2],
        split_shares: [[0.0; 3]; 2],
        split_same_variant: 0,
    };
    let mut counts = [[0usize; 3]; 2];
    let index = |name: &str| SPLIT.iter().position(|(v, _)| *v == name).unwrap_or_else(|| panic!("variant {name}"));
    for (i, subject) in subjects(n, 0x5eed, false).iter().enumerate() {
        let (m, u) = (subject.mobius(), subject.unleash());
        let copy = i % COPIES;
        for (pair, on) in [("static", &mut agreement.static_on), ("targeting", &mut agreement.targeting_on)] {
            let key = format!("{pair}-{copy}");
            let (ours, theirs) = (mobius_boolean(set, &key, &m), yggdrasil_boolean(engine, &key, &u));
            assert_eq!(ours, theirs, "{key}: the engines disagree on {subject:?}");
            on[0] += usize::from(ours.on);
            on[1] += usize::from(theirs.on);
        }
        let key = format!("split-{copy}");
        let (ours, theirs) = (mobius_split(set, &key, &m), yggdrasil_split(engine, &key, &u));
        counts[0][index(ours)] += 1;
        counts[1][index(&theirs)] += 1;
        agreement.split_same_variant += usize::from(ours == theirs);
    }
    for (engine_shares, engine_counts) in agreement.split_shares.iter_mut().zip(counts) {
        for ((share, count), (variant, weight)) in engine_shares.iter_mut().zip(engine_counts).zip(SPLIT) {
            *share = 100.0 * count as f64 / n as f64;
            assert!(
                (*share - f64::from(weight)).abs() <= 2.0,
                "split variant {variant}: share {share:.2} % is more than 2 points from its weight {weight}"
            );
        }
    }
    assert_eq!(agreement.static_on, [n, n], "the static flag is always on");
    agreement
}

impl std::fmt::Display for Agreement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.contexts;
        let pct = |count: usize| 100.0 * count as f64 / n as f64;
        let shares = |s: [f64; 3]| s.map(|x| format!("{x:.1}")).join("/");
        writeln!(f, "agreement over {n} contexts:")?;
        writeln!(f, "  static:    identical answers, on for {}/{n} (both)", self.static_on[0])?;
        writeln!(
            f,
            "  targeting: identical answers, on for {}/{n} ({:.1} %, both)",
            self.targeting_on[0],
            pct(self.targeting_on[0])
        )?;
        writeln!(
            f,
            "  split:     shares a/b/c mobius {} %, yggdrasil {} % (weights 33/33/34); same variant for {:.1} % of subjects (chance: ~33 %)",
            shares(self.split_shares[0]),
            shares(self.split_shares[1]),
            pct(self.split_same_variant)
        )
    }
}
