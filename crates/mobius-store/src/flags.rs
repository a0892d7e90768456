//! Feature flag sets as stored: each set's current flagd document, its version and its
//! environment (see `mobius_features`, which validates documents and owns their meaning; the
//! store keeps the text).
//!
//! A change is a compare-and-set on the version: [`crate::Store::put_flag_set`] writes version
//! `base + 1` only while the stored version is still `base`, and appends the change's event in
//! the same transaction — so of two writers that read the same version one wins, and the log
//! holds an event for every version and for nothing else. A deleted set stays as a tombstone
//! (no document) whose version keeps counting.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// A flag set as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagSetRecord {
    /// The set's name: its one identity.
    pub name: String,
    /// The deployment environment the set belongs to; `""` for none.
    pub environment: String,
    /// 1 for the first document, one more for each change (a deletion included).
    pub version: i64,
    /// The flagd document as it was put; `None` once the set was deleted.
    pub document: Option<String>,
    /// When the current version was written.
    pub updated: Timestamp,
    /// Who made the change (a token's name, `cli`, a deployer).
    pub updated_by: String,
}

/// A change to write: the set as it is to become, and the version it replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagSetWrite<'a> {
    pub name: &'a str,
    pub environment: &'a str,
    /// The version this change was made from: the stored version (a tombstone's included), or 0
    /// for a set never stored. The change is written as `base + 1`.
    pub base: i64,
    /// The new document; `None` deletes the set.
    pub document: Option<&'a str>,
    pub updated: Timestamp,
    pub updated_by: &'a str,
}

/// What became of a [`FlagSetWrite`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagSetPut {
    /// Written, with its event, as this version.
    Written { version: i64 },
    /// Another change came first: nothing was written; the stored version is `current` (0: the
    /// set was never stored).
    Conflict { current: i64 },
}

/// The channel every change is announced on (PostgreSQL's `NOTIFY`, payload `<name>:<version>`)
/// from the transaction that writes it.
pub const CHANNEL: &str = "mobius_flag_sets";
