//! Narrow keys for the fact tables and the log (migration 0022): the log's `(source, id)` as a
//! 64-bit hash, and (service, environment), repositories and (repository, branch) interned as
//! small integers. A bulk import inserts millions of rows at random places in these B-trees;
//! narrower keys keep more of each tree in the page cache (`bench/RESULTS.md`).

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params};

use crate::StoreError;

/// The log's identity `(source, id)` as a 64-bit FNV-1a hash, for the `events_key` index. Not a
/// unique key: two identities may share a hash, so every lookup compares `source` and `id` as
/// well. Stored in the database, so it must never change.
pub(super) fn event_key(source: &str, id: &str) -> i64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    // The source's length first, so that ("ab", "c") and ("a", "bc") hash apart.
    let len = (source.len() as u64).to_le_bytes();
    for byte in len.iter().chain(source.as_bytes()).chain(id.as_bytes()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(PRIME);
    }
    hash as i64
}

/// Gives every event copied by migration 0022 its key. Runs when the store is opened, before
/// anything can be appended; nothing when every event has one (one index seek).
pub(super) fn backfill_event_keys(conn: &Connection) -> Result<(), StoreError> {
    let missing =
        conn.query_row("SELECT EXISTS (SELECT 1 FROM events WHERE key IS NULL)", [], |r| r.get::<_, bool>(0))?;
    if !missing {
        return Ok(());
    }
    let tx = conn.unchecked_transaction()?;
    {
        let mut read = tx.prepare("SELECT seq, source, id FROM events WHERE key IS NULL")?;
        let mut write = tx.prepare("UPDATE events SET key = ?2 WHERE seq = ?1")?;
        let mut rows = read.query([])?;
        while let Some(row) = rows.next()? {
            let (seq, source, id): (i64, String, String) = (row.get(0)?, row.get(1)?, row.get(2)?);
            write.execute(params![seq, event_key(&source, &id)])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// The writer's interned names, remembered for the appender's life (one append, or a whole
/// import). An id is remembered only once its row exists in the current transaction or a
/// committed one; the appender never outlives a transaction that rolls back.
#[derive(Default)]
pub(super) struct Interned {
    scopes: HashMap<(String, String), i64>,
    repositories: HashMap<String, i64>,
    branches: HashMap<(String, String), i64>,
}

/// What is interned, with its table's statements.
#[derive(Clone, Copy)]
pub(super) enum Name {
    Scope,
    Repository,
    Branch,
}

impl Name {
    fn select(self) -> &'static str {
        match self {
            Name::Scope => "SELECT id FROM fact_scopes WHERE service = ?1 AND environment = ?2",
            Name::Repository => "SELECT id FROM fact_repositories WHERE name = ?1",
            Name::Branch => "SELECT id FROM push_branches WHERE repository = ?1 AND branch = ?2",
        }
    }

    fn insert(self) -> &'static str {
        match self {
            Name::Scope => "INSERT INTO fact_scopes (service, environment) VALUES (?1, ?2)",
            Name::Repository => "INSERT INTO fact_repositories (name) VALUES (?1)",
            Name::Branch => "INSERT INTO push_branches (repository, branch) VALUES (?1, ?2)",
        }
    }
}

impl Interned {
    /// The id of `(a, b)` (`b` is `None` for a repository), made when `create` and not there yet.
    pub(super) fn id(
        &mut self,
        conn: &Connection,
        name: Name,
        a: &str,
        b: Option<&str>,
        create: bool,
    ) -> Result<Option<i64>, StoreError> {
        let pair = |b: Option<&str>| (a.to_owned(), b.unwrap_or_default().to_owned());
        let known = match name {
            Name::Scope => self.scopes.get(&pair(b)),
            Name::Repository => self.repositories.get(a),
            Name::Branch => self.branches.get(&pair(b)),
        };
        if let Some(id) = known {
            return Ok(Some(*id));
        }
        let key: &[&dyn rusqlite::ToSql] = match name {
            Name::Repository => params![a],
            Name::Scope | Name::Branch => params![a, b],
        };
        let mut id = conn.prepare_cached(name.select())?.query_row(key, |r| r.get(0)).optional()?;
        if id.is_none() && create {
            conn.prepare_cached(name.insert())?.execute(key)?;
            id = Some(conn.last_insert_rowid());
        }
        if let Some(id) = id {
            match name {
                Name::Scope => self.scopes.insert(pair(b), id),
                Name::Repository => self.repositories.insert(a.to_owned(), id),
                Name::Branch => self.branches.insert(pair(b), id),
            };
        }
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use mobius_events::materialise::{FactTxn, NoAncestry, Rules, StreamPosition};
    use mobius_events::time::from_micros;
    use mobius_events::{AppendStatus, NewEvent, Origin};

    use super::*;
    use crate::sqlite::facts::Appender;
    use crate::{EventQuery, IngestContext, Scope, SqliteStore, Store};

    /// The hash is stored in the database: it must never change, and the source's length is
    /// part of it.
    #[test]
    fn event_keys_are_stable_and_separate_the_two_parts() {
        assert_eq!(event_key("", ""), 0xa8c7_f832_281a_39c5_u64 as i64);
        assert_ne!(event_key("ab", "c"), event_key("a", "bc"));
        assert_ne!(event_key("s", "1"), event_key("s", "2"));
        assert_eq!(event_key("https://github.com/o/r", "id-1"), event_key("https://github.com/o/r", "id-1"));
    }

    /// A database as the schema before 0022 made it (migrations 0001–0020, from their files).
    fn old_store(path: &std::path::Path) -> Connection {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/sqlite/migrations");
        let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        let conn = Connection::open(path).unwrap();
        let old = files.iter().filter(|f| f.file_name().unwrap().to_str().unwrap() < "0021");
        assert_eq!(old.clone().count(), 20);
        for file in old {
            conn.execute_batch(&std::fs::read_to_string(file).unwrap()).unwrap();
        }
        conn.pragma_update(None, "user_version", 20).unwrap();
        conn
    }

    fn event(source: &str, id: &str) -> NewEvent {
        NewEvent {
            id: id.into(),
            source: source.into(),
            ty: "dev.cdevents.change.merged.0.2.0".into(),
            subject: "s".into(),
            timestamp: from_micros(1_000_000),
            origin: Origin::Api,
            raw: format!("{{\"id\":\"{id}\"}}"),
            observations: Vec::new(),
        }
    }

    /// Migration 0022 rewrites the log, the push stream and the shipped changes with narrower
    /// keys: a store made before it keeps every row, its log's identities still deduplicate,
    /// and every read of the rewritten tables finds what it found before.
    #[test]
    fn a_store_made_before_0022_keeps_its_log_and_facts() {
        let dir = tempfile::tempdir().unwrap();
        let conn = old_store(&dir.path().join("mobius.db"));
        conn.execute_batch(
            "INSERT INTO events (seq, source, id, type, subject, ts, received, origin, raw) VALUES
               (1, '/a', 'e1', 't', 's', 1, 2, 'api', 'one'),
               (2, '/a', 'e2', 't', 's', 3, 4, 'import', 'two'),
               (5, '/b', 'e1', 't', 's', 5, 6, 'api', 'three');
             INSERT INTO deployments (id, key, service, environment, repository, revision, started, finished,
                                      outcome, changes_from) VALUES
               (1, 'd1', 'app', 'production', 'acme/app', 'c2', 10, 10, 'success', 'push_stream'),
               (2, 'd2', 'app', 'staging', 'acme/lib', 'f1', 11, 11, 'success', 'push_stream');
             INSERT INTO changes (repository, sha, commit_time, message) VALUES
               ('acme/app', 'c1', 1, 'first'), ('acme/app', 'c2', 2, 'second'), ('acme/lib', 'f1', 3, 'lib'),
               ('acme/unshipped', 'u1', 4, 'never deployed');
             INSERT INTO deployment_changes (service, environment, repository, sha, deployment_id) VALUES
               ('app', 'production', 'acme/app', 'c1', 1), ('app', 'production', 'acme/app', 'c2', 1),
               ('app', 'staging', 'acme/lib', 'f1', 2);
             INSERT INTO push_stream (position, repository, branch, sha) VALUES
               (1, 'acme/app', 'main', 'c1'), (2, 'acme/app', 'feature', 'x1'), (3, 'acme/app', 'main', 'c2'),
               (4, 'acme/lib', 'main', 'f1'), (5, 'acme/app', 'feature', 'c2');",
        )
        .unwrap();
        drop(conn);

        let store = SqliteStore::open(dir.path()).unwrap();
        let log = store.events(&EventQuery::default()).unwrap();
        let log: Vec<_> = log.iter().map(|e| (e.seq, e.source.as_str(), e.id.as_str(), e.raw.as_str())).collect();
        assert_eq!(log, [(1, "/a", "e1", "one"), (2, "/a", "e2", "two"), (5, "/b", "e1", "three")]);

        let ctx = IngestContext { rules: Rules::default(), ancestry: &NoAncestry };
        let statuses = store.append(&[event("/a", "e1"), event("/b", "e1"), event("/b", "e2")], &ctx).unwrap();
        assert_eq!(statuses, [AppendStatus::Duplicate, AppendStatus::Duplicate, AppendStatus::Stored]);
        assert_eq!(store.event_count().unwrap(), 4);

        let scope = Scope { service: "app".into(), environment: "production".into() };
        let facts = store.facts(&scope, from_micros(0), from_micros(100)).unwrap();
        let shipped: Vec<_> = facts
            .changes
            .iter()
            .map(|c| (c.repository.as_str(), c.sha.as_str(), c.message.as_str(), c.deployment_id))
            .collect();
        assert_eq!(shipped, [("acme/app", "c1", "first", 1), ("acme/app", "c2", "second", 1)]);
        drop(store);

        let conn = Connection::open(dir.path().join("mobius.db")).unwrap();
        let keyed: Vec<(String, String, i64)> = conn
            .prepare("SELECT source, id, key FROM events ORDER BY seq")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(keyed.len(), 4);
        for (source, id, key) in keyed {
            assert_eq!(key, event_key(&source, &id), "{source} {id}");
        }
        let changes: Vec<(String, String, String)> = conn
            .prepare("SELECT r.name, c.sha, c.message FROM changes c JOIN fact_repositories r ON r.id = c.repository ORDER BY 1, 2")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let expected = [("acme/app", "c1", "first"), ("acme/app", "c2", "second"), ("acme/lib", "f1", "lib")];
        let mut expected = expected.map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned())).to_vec();
        expected.push(("acme/unshipped".into(), "u1".into(), "never deployed".into()));
        assert_eq!(changes, expected);
        let tx = conn.unchecked_transaction().unwrap();
        let mut facts = Appender::new(&tx);
        let at = |repository: &str, branch: &str, position| StreamPosition {
            repository: repository.into(),
            branch: branch.into(),
            position,
        };
        assert_eq!(facts.stream_position(None, "c2").unwrap(), Some(at("acme/app", "feature", 5)));
        assert_eq!(facts.stream_position(Some("acme/lib"), "f1").unwrap(), Some(at("acme/lib", "main", 4)));
        assert_eq!(facts.stream_position(Some("acme/lib"), "c2").unwrap(), None);
        assert_eq!(facts.stream_between("acme/app", "main", None, 5).unwrap(), ["c1", "c2"]);
        assert_eq!(facts.stream_between("acme/app", "feature", Some(2), 5).unwrap(), ["c2"]);
        assert_eq!(facts.stream_between("acme/app", "gone", None, 5).unwrap(), Vec::<String>::new());
        assert_eq!(facts.deployment_shipping("app", "production", "C").unwrap(), Some(1));
        assert_eq!(facts.deployment_shipping("app", "staging", "f1").unwrap(), Some(2));
        assert_eq!(facts.deployment_shipping("app", "staging", "c1").unwrap(), None);
        assert_eq!(facts.deployment_shipping("web", "production", "c1").unwrap(), None);
        // A change already shipped to its scope stays with the deployment that shipped it first.
        facts.ship(2, "app", "production", "acme/app", &["c1".into(), "c3".into()]).unwrap();
        facts.append_push("acme/app", "main", &["c3"]).unwrap();
        assert_eq!(facts.stream_between("acme/app", "main", Some(1), 100).unwrap(), ["c2", "c3"]);
        drop(facts);
        let shipped: Vec<(String, i64)> = tx
            .prepare("SELECT sha, deployment_id FROM deployment_changes WHERE scope = 1 ORDER BY sha")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(shipped, [("c1".to_owned(), 1), ("c2".to_owned(), 1), ("c3".to_owned(), 2)]);
    }
}
