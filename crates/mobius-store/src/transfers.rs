//! Files passing through the store for one agent job, so that any replica can answer an
//! agent whatever replica queued its job.
//!
//! A job's dispatcher (on the replica driving its run) names a **transfer** (a random key it
//! seals into the job) and puts in it, before queuing the job, the files the agent may read:
//! the workspace tar (name `source`) and every blob the job's artifact and cache records
//! name (named by their digest). The agent, through any replica, reads those files only by
//! the job's transfer, so it can read nothing else; it uploads what its job made into the same
//! transfer (its blobs, then its records under one name), and the dispatcher copies them into
//! its run's artifact store when the job ends, then releases the transfer.
//!
//! Content is stored once per digest ([`crate::Store::put_transfer_file`] keeps a blob that is
//! there), and a blob lives as long as some transfer names it: [`crate::Store::release_transfer`]
//! forgets the transfer's names and deletes the blobs no other transfer names. Putting,
//! holding and releasing are serialised (one writer on SQLite, an advisory lock of their own on
//! PostgreSQL), so a blob is never deleted under a transfer taking it up. Digests are the
//! caller's to check: the store keeps bytes by the name it is given.

/// The name of a transfer's workspace tar.
pub const SOURCE: &str = "source";
/// The name under which an agent's job leaves the records it made (JSON).
pub const MADE: &str = "made";
