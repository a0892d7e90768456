//! [`FlagSet`]: a validated, compiled flag set, immutable and cheap to share.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::fractional::Algorithm;
use crate::logic::Expr;

/// A loaded flag set. Cloning shares it (an `Arc`), so a server can hand the current set to
/// every request and swap in a new one without waiting for them.
#[derive(Clone)]
pub struct FlagSet {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    /// Sorted by key, so `evaluate_all` and listings have a stable order.
    pub flags: Vec<Flag>,
    pub index: HashMap<String, usize, BuildHasherDefault<KeyHasher>>,
    pub metadata: Map<String, Value>,
    pub algorithm: Algorithm,
    pub require_targeting_key: bool,
}

/// One flag of a set, as loaded.
pub struct Flag {
    pub(crate) key: String,
    /// The key as a JSON string, lent to rules reading `$flagd.flagKey`.
    pub(crate) key_value: Value,
    pub(crate) enabled: bool,
    pub(crate) variants: Vec<(String, Value)>,
    pub(crate) variant_type: VariantType,
    pub(crate) default_variant: Option<usize>,
    pub(crate) targeting: Option<Expr>,
    /// The set's metadata overlaid with the flag's own (the flag's keys win).
    pub(crate) metadata: Map<String, Value>,
}

/// The one JSON type all of a flag's variants share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VariantType {
    /// `true` / `false`.
    Boolean,
    /// Strings.
    String,
    /// Numbers, integers or not.
    Number,
    /// JSON objects.
    Object,
}

impl VariantType {
    pub(crate) fn article(self) -> &'static str {
        match self {
            VariantType::Boolean => "a boolean",
            VariantType::String => "a string",
            VariantType::Number => "a number",
            VariantType::Object => "an object",
        }
    }
}

impl FlagSet {
    /// The flag with this key.
    pub fn get(&self, key: &str) -> Option<&Flag> {
        self.inner.index.get(key).map(|&i| &self.inner.flags[i])
    }

    /// Every flag, by key.
    pub fn flags(&self) -> impl ExactSizeIterator<Item = &Flag> {
        self.inner.flags.iter()
    }

    /// How many flags the set has, disabled ones included.
    pub fn len(&self) -> usize {
        self.inner.flags.len()
    }

    /// Whether the set has no flags.
    pub fn is_empty(&self) -> bool {
        self.inner.flags.is_empty()
    }

    /// The set's own metadata (`flagSetId`, `version`, …).
    pub fn metadata(&self) -> &Map<String, Value> {
        &self.inner.metadata
    }

    /// The `fractional` algorithm this set buckets with: the one its metadata names under
    /// `"mobius.fractional"`, else [`LoadOptions::fractional`](crate::LoadOptions).
    pub fn fractional_algorithm(&self) -> Algorithm {
        self.inner.algorithm
    }
}

impl std::fmt::Debug for FlagSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlagSet")
            .field("flags", &self.inner.flags.len())
            .field("metadata", &self.inner.metadata)
            .finish()
    }
}

impl Flag {
    /// The flag's key in its set.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// `state: ENABLED`.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// The variants in document order.
    pub fn variants(&self) -> impl ExactSizeIterator<Item = (&str, &Value)> {
        self.variants.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The value of the variant `name`.
    pub fn variant(&self, name: &str) -> Option<&Value> {
        self.variant_index(name).map(|i| &self.variants[i].1)
    }

    /// The type all its variants share.
    pub fn variant_type(&self) -> VariantType {
        self.variant_type
    }

    /// `defaultVariant`, when the flag has one.
    pub fn default_variant(&self) -> Option<&str> {
        self.default_variant.map(|i| self.variants[i].0.as_str())
    }

    /// Whether the flag has targeting (an empty `{}` is none).
    pub fn has_targeting(&self) -> bool {
        self.targeting.is_some()
    }

    /// Metadata as evaluations report it: the set's, overlaid with the flag's.
    pub fn metadata(&self) -> &Map<String, Value> {
        &self.metadata
    }

    pub(crate) fn variant_index(&self, name: &str) -> Option<usize> {
        // Flags have a handful of variants: a scan beats hashing.
        self.variants.iter().position(|(n, _)| n == name)
    }
}

impl std::fmt::Debug for Flag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flag")
            .field("key", &self.key)
            .field("enabled", &self.enabled)
            .field("variants", &self.variants)
            .field("default_variant", &self.default_variant())
            .field("targeting", &self.targeting.is_some())
            .finish()
    }
}

/// The hasher of the flag-key index: FxHash's multiply-rotate, several times faster than
/// SipHash on short keys. SipHash's protection is against an attacker choosing the keys a map
/// holds; this map's keys come from the loaded document, and a request only looks one up.
#[derive(Default)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let word = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
            self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
        }
        for &byte in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(byte)).wrapping_mul(K);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}
