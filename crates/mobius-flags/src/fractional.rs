//! flagd's `fractional` bucketing: which share of a split a subject falls in.
//!
//! A subject's bucketing key (by default the flag key followed by the targeting key) is hashed
//! with MurmurHash3 x86 32-bit, seed 0, and the hash picks a bucket. Two algorithms exist and a
//! set chooses one ([`Algorithm`]), because changing it moves users between variants:
//!
//! - [`Algorithm::HighPrecision`] (flagd core v0.15 and later): integer weights, `bucket =
//!   (hash × total) >> 32` in `[0, total)`, so any weights up to a total of `i32::MAX` split
//!   exactly, with no rounding and no float.
//! - [`Algorithm::Legacy`] (earlier flagd): the hash as an `i32`, `|h| / i32::MAX × 100` as a
//!   float percentage, walked against each weight's percentage of the total. A set moving to
//!   flagd 0.15 from an older flagd keeps its users in their variants with it.
//!
//! **Choosing one.** A set names its algorithm in its own metadata, so the choice travels with
//! the document (through the API, a release's flag files, the provider) and the document stays
//! valid flagd (metadata is part of flagd's format; flagd ignores the key):
//!
//! ```json
//! { "metadata": { "mobius.fractional": "legacy" }, "flags": { … } }
//! ```
//!
//! [`METADATA_KEY`] is `"high-precision"` or `"legacy"`; any other value, or the key in a
//! flag's metadata rather than the set's, refuses the document at its position. Without it, a
//! set uses [`LoadOptions::fractional`](crate::LoadOptions) (high precision by default).
//! [`FlagSet::fractional_algorithm`](crate::FlagSet::fractional_algorithm) says which a set has.
//!
//! The legacy arithmetic is flagd's last code before the change (`core/pkg/evaluator/
//! fractional.go`: `bucket := hashRatio * 100`, ranges `100 * weight / total`, all `float64`),
//! not the integer `int(hashRatio * 100)` of flagd's earlier design notes: the two agree when
//! every range ends on a whole percent (the testbed's 25/25/25/25) and differ otherwise
//! (`user-3` over `[1, 2]` buckets at 33.89: the second entry in flagd, the first in the notes).
//!
//! MurmurHash3 is written here (twenty lines, checked against the published vectors) rather
//! than taken from a crate: the maintained crates hash streams, not the one-shot `&[u8]` this
//! needs, and the function is fixed by its specification.

/// The largest total weight a split may have (flagd: the sum must fit a signed 32-bit integer).
pub const MAX_TOTAL_WEIGHT: u64 = i32::MAX as u64;

/// The set-level metadata key that chooses a set's [`Algorithm`] ([`Algorithm::name`]).
pub const METADATA_KEY: &str = "mobius.fractional";

/// Which bucketing a flag set uses for `fractional`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Algorithm {
    /// flagd ≥ 0.15: `(hash × total) >> 32`, integer weights. `"high-precision"`.
    #[default]
    HighPrecision,
    /// flagd < 0.15: float percentages of `|hash as i32| / i32::MAX`. `"legacy"`.
    Legacy,
}

impl Algorithm {
    /// Every algorithm, in the order their names are listed to users.
    pub const ALL: [Algorithm; 2] = [Algorithm::HighPrecision, Algorithm::Legacy];

    /// The name a set's metadata gives it under [`METADATA_KEY`].
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::HighPrecision => "high-precision",
            Algorithm::Legacy => "legacy",
        }
    }

    /// The algorithm of that name ([`Algorithm::name`]), exactly as spelled.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// MurmurHash3, x86 32-bit variant.
pub fn murmur3_32(data: &[u8], seed: u32) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mut h = seed;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        let mut k = 0u32;
        for (i, &b) in tail.iter().enumerate() {
            k |= u32::from(b) << (8 * i);
        }
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
    }
    h ^= data.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

/// The index of the entry a key falls in, given each entry's weight (already clamped to be
/// non-negative), or `None` when the weights sum to zero or past [`MAX_TOTAL_WEIGHT`] (flagd
/// then returns null, and the flag falls back to its default).
pub fn pick(algorithm: Algorithm, bucket_by: &str, weights: &[u64]) -> Option<usize> {
    let total = weights.iter().try_fold(0u64, |sum, &w| sum.checked_add(w))?;
    if total == 0 || total > MAX_TOTAL_WEIGHT {
        return None;
    }
    let hash = murmur3_32(bucket_by.as_bytes(), 0);
    match algorithm {
        Algorithm::HighPrecision => {
            let bucket = (u64::from(hash) * total) >> 32;
            let mut range_end = 0u64;
            weights.iter().position(|&w| {
                range_end += w;
                bucket < range_end
            })
        }
        Algorithm::Legacy => {
            // flagd's float arithmetic, step for step: |i32| / MaxInt32 * 100, then a running sum
            // of 100 * weight / total. i32::MIN gives a bucket just above 100 and no entry.
            let bucket = f64::from(hash as i32).abs() / f64::from(i32::MAX) * 100.0;
            let mut range_end = 0.0f64;
            weights.iter().position(|&w| {
                range_end += 100.0 * w as f64 / total as f64;
                bucket < range_end
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur3_matches_the_published_vectors() {
        // The reference implementation's (SMHasher) vectors, as quoted on Wikipedia and in
        // every port's test suite.
        for (input, seed, expected) in [
            ("", 0, 0x0000_0000),
            ("", 1, 0x514e_28b7),
            ("", 0xffff_ffff, 0x81f1_6f39),
            ("test", 0, 0xba6b_d213),
            ("test", 0x9747_b28c, 0x704b_81dc),
            ("Hello, world!", 0, 0xc036_3e43),
            ("Hello, world!", 0x9747_b28c, 0x2488_4cba),
            ("The quick brown fox jumps over the lazy dog", 0, 0x2e4f_f723),
            ("The quick brown fox jumps over the lazy dog", 0x9747_b28c, 0x2fa8_26cd),
            ("a", 0x9747_b28c, 0x7fa0_9ea6),
            ("aa", 0x9747_b28c, 0x5d21_1726),
            ("aaa", 0x9747_b28c, 0x283e_0130),
            ("aaaa", 0x9747_b28c, 0x5a97_808a),
        ] {
            assert_eq!(murmur3_32(input.as_bytes(), seed), expected, "{input:?} seed {seed:#x}");
        }
        assert_eq!(murmur3_32(&[0, 0, 0, 0], 0), 0x2362_f9de);
        assert_eq!(murmur3_32(&[0xff, 0xff, 0xff, 0xff], 0), 0x7629_3b50);
    }

    #[test]
    fn the_hash_edge_keys_hash_where_flagd_says() {
        // Keys found by brute force so their hashes sit on the bucket boundaries (delivery.md §4.2).
        for (key, hash) in [
            ("ejOoVL", 0x0000_0000),
            ("bY9fO-", 0x0000_0001),
            ("SI7p-", 0x7fff_ffff),
            ("6LvT0", 0x8000_0000),
            ("ceQdGm", 0xffff_ffff),
        ] {
            assert_eq!(murmur3_32(key.as_bytes(), 0), hash, "{key}");
        }
    }

    #[test]
    fn high_precision_buckets_are_exact_at_the_edges() {
        let halves = [50, 50];
        assert_eq!(pick(Algorithm::HighPrecision, "ejOoVL", &halves), Some(0));
        assert_eq!(pick(Algorithm::HighPrecision, "SI7p-", &halves), Some(0), "0x7fffffff * 100 >> 32 = 49");
        assert_eq!(pick(Algorithm::HighPrecision, "6LvT0", &halves), Some(1), "0x80000000 * 100 >> 32 = 50");
        assert_eq!(pick(Algorithm::HighPrecision, "ceQdGm", &halves), Some(1));
        // The largest total: the top hash lands in the last unit of weight.
        let max = MAX_TOTAL_WEIGHT;
        assert_eq!(pick(Algorithm::HighPrecision, "ceQdGm", &[max - 1, 1]), Some(1));
        assert_eq!(pick(Algorithm::HighPrecision, "ejOoVL", &[1, max - 1]), Some(0));
    }

    #[test]
    fn totals_of_zero_or_past_the_limit_pick_nothing() {
        assert_eq!(pick(Algorithm::HighPrecision, "x", &[0, 0]), None);
        assert_eq!(pick(Algorithm::HighPrecision, "x", &[MAX_TOTAL_WEIGHT, 1]), None);
        assert_eq!(pick(Algorithm::HighPrecision, "x", &[u64::MAX, 1]), None);
        assert_eq!(pick(Algorithm::Legacy, "x", &[]), None);
    }

    #[test]
    fn legacy_folds_the_sign_and_misses_on_i32_min() {
        // 0x80000000 is i32::MIN: |MIN| / MAX * 100 is just over 100, past every range.
        assert_eq!(pick(Algorithm::Legacy, "6LvT0", &[50, 50]), None);
        // 0xffffffff is -1: a bucket near 0.
        assert_eq!(pick(Algorithm::Legacy, "ceQdGm", &[50, 50]), Some(0));
        // 0x7fffffff is i32::MAX: exactly 100.0, which no range `< 100` holds either.
        assert_eq!(pick(Algorithm::Legacy, "SI7p-", &[50, 50]), None);
        assert_eq!(pick(Algorithm::Legacy, "bY9fO-", &[50, 50]), Some(0));
    }

    #[test]
    fn legacy_is_flagds_float_arithmetic_not_whole_percent_buckets() {
        // murmur3("user-3") as i32 gives |h| / i32::MAX × 100 = 33.894…, past the first range's
        // end at 33.333…: flagd's float walk picks the second entry. Truncating the bucket to
        // 33 first, as flagd's early design notes (and delivery.md §4.2) write it, would pick
        // the first.
        let hash = murmur3_32(b"user-3", 0) as i32;
        let bucket = f64::from(hash).abs() / f64::from(i32::MAX) * 100.0;
        assert!((33.89..33.90).contains(&bucket), "{bucket}");
        assert_eq!(pick(Algorithm::Legacy, "user-3", &[1, 2]), Some(1));
        assert_eq!(pick(Algorithm::HighPrecision, "user-3", &[1, 2]), Some(0));
        // Where every range ends on a whole percent, both readings agree.
        assert_eq!(pick(Algorithm::Legacy, "user-3", &[34, 66]), Some(0));
    }

    #[test]
    fn algorithms_are_named_as_set_metadata_names_them() {
        for algorithm in Algorithm::ALL {
            assert_eq!(Algorithm::from_name(algorithm.name()), Some(algorithm));
        }
        assert_eq!(Algorithm::from_name("legacy"), Some(Algorithm::Legacy));
        assert_eq!(Algorithm::from_name("high-precision"), Some(Algorithm::HighPrecision));
        for unknown in ["", "Legacy", "v1", "high_precision", " legacy"] {
            assert_eq!(Algorithm::from_name(unknown), None, "{unknown:?}");
        }
    }

    #[test]
    fn shares_converge_to_the_weights() {
        // 200k keys over a 10/30/60 split: each share within 1% of its weight, for both algorithms.
        for algorithm in [Algorithm::HighPrecision, Algorithm::Legacy] {
            let mut counts = [0u32; 3];
            for i in 0..200_000 {
                let key = format!("user-{i}");
                counts[pick(algorithm, &key, &[10, 30, 60]).unwrap()] += 1;
            }
            for (count, weight) in counts.iter().zip([10.0, 30.0, 60.0]) {
                let share = f64::from(*count) / 2000.0;
                assert!((share - weight).abs() < 1.0, "{algorithm:?}: {counts:?}");
            }
        }
    }
}
